"""Response-rate limiting (core.serve.rrl) on a fake clock: credit per second per /24 and
response, slip, and the credit coming back with time."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rrset

from sigchain.core.serve.rrl import DROP, SEND, SLIP, RateLimit, RateLimiter, response_key, slipped

KEY = (b"\x03www\x07example\x04test\x00", 1, 0)


def test_five_a_second_then_slip_every_second_one_and_credit_returns() -> None:
    rrl = RateLimiter(RateLimit(per_second=5, window=15, slip=2))
    first = [rrl.decide("192.0.2.7", KEY, 1000) for _ in range(11)]
    assert first == [SEND] * 5 + [DROP, SLIP] * 3
    assert rrl.decide("192.0.2.200", KEY, 1000) == DROP  # the same /24 shares the account
    assert rrl.decide("192.0.3.7", KEY, 1000) == SEND  # another /24 does not
    assert rrl.decide("192.0.2.7", (KEY[0], 28, 0), 1000) == SEND  # nor another response
    # 7 responses of debt at 5 a second: sent again 2 seconds later, not after 1.
    assert rrl.decide("192.0.2.7", KEY, 1001) != SEND
    assert rrl.decide("192.0.2.7", KEY, 1003) == SEND
    assert rrl.stats["dropped"] == 4 and rrl.stats["slipped"] == 4


def test_slip_zero_drops_all_and_slipped_answer_is_truncated_question_only() -> None:
    rrl = RateLimiter(RateLimit(per_second=1, slip=0))
    assert [rrl.decide("2001:db8::1", KEY, 5) for _ in range(4)] == [SEND, DROP, DROP, DROP]
    query = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("www.example.test.", 60, "IN", "A", "192.0.2.1"))
    wire = response.to_wire()
    assert response_key(wire) == KEY
    short = dns.message.from_wire(slipped(wire))
    assert short.flags & dns.flags.TC and short.id == query.id
    assert short.question == query.question and not short.answer and not short.additional
    assert (short.edns, short.payload) == (0, response.payload)  # RFC 6891 §7: its OPT kept
    plain = dns.message.make_response(dns.message.make_query("www.example.test.", "A"))
    plain.answer.append(dns.rrset.from_text("www.example.test.", 60, "IN", "A", "192.0.2.1"))
    assert dns.message.from_wire(slipped(plain.to_wire())).edns == -1  # none asked, none given
