from segaudit.cli import main

main()
