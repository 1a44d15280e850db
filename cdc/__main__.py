"""``python -m cdc`` is the same as the ``cdc`` command."""

from cdc.cli import entry

if __name__ == "__main__":
    entry()
