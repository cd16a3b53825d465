from funduskit.cli import main

raise SystemExit(main())
