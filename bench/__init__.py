"""The benchmark behind `scripts/bench`: the Rust rotator against a Python
rotation function and the deployer against the AWS CLI, in the local
emulator. It is not part of the test suite or of CI."""
