from effcli.cli.main import main

main()
