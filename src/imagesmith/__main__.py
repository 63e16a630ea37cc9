from imagesmith.cli.main import main

raise SystemExit(main())
