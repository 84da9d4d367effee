from exportd.cli.main import main

raise SystemExit(main())
