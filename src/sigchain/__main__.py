from sigchain.cli.main import main

main()
