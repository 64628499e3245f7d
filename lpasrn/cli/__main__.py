"""`python -m lpasrn.cli`, as before the commands became a package (same as `python -m lpasrn`)."""

from lpasrn.cli import main

main()
