"""``python -m attentive_eraser``: the same command line as the ``attentive-eraser`` script."""

from attentive_eraser.cli import main

if __name__ == "__main__":
    main()
