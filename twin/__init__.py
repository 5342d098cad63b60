"""The local twin: the whole stepmail pipeline on this machine, no AWS account (see twin.twin)."""
