from meterflow.cli import main

raise SystemExit(main())
