"""`python -m assay.recipes.cli`: the same command line as `assay`."""

from assay.recipes.cli import main

main()
