"""track: the weekly upstream-tracking job (new tag -> branch -> check -> pull request)."""
