from ukl_patchbot.cli import main

raise SystemExit(main())
