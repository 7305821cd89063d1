from aaa.cli import main

main()
