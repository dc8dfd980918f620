from iznet.cli.main import main

main()
