"""``python -m cdc`` is the same as the ``cdc`` command."""

from cdc.cli import main

if __name__ == "__main__":
    main()
