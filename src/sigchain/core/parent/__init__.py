"""The parent side of a zone's DS (pure): what every parent server shows, and what it should."""
