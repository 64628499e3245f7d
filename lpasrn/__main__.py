from lpasrn.cli import main

main()
