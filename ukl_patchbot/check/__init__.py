"""check: build and boot the classic and UKL variants of a rebased tree, classify the console, report."""
