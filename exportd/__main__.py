from exportd.cli import main

raise SystemExit(main())
