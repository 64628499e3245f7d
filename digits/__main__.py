from digits.cli.main import main

main()
