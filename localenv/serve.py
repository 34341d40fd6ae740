"""Run MiniStack with the localenv patches: `python -m localenv.serve`.

MiniStack reads its settings from the environment (BIND_HOST, GATEWAY_PORT,
TMPDIR, STATE_DIR and others); `localenv.emulator.Emulator` sets them.
"""

from localenv import ministack_patches


def main():
    # Importing the app first sets up MiniStack's logging, so the patches'
    # log lines reach the server log.
    from ministack.app import main as ministack_main

    ministack_patches.apply()
    ministack_main()


if __name__ == "__main__":
    main()
