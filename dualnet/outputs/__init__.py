"""The one guarded writer: every file dualnet creates or replaces goes through this module.

    with outputs.writing("runs/log.csv", "CSV log") as f:   # f: a binary file, open for writing
        f.write(data)                                        # placed atomically when the block ends

Before anything is written, a target is refused (OutputError, one line naming it and the fix) when
- it exists and is not a regular file: a directory, FIFO, socket or device, decided from stat/lstat
  without opening it (os.replace would turn /dev/null into a regular file; opening a FIFO blocks);
- it is an input of the same command (same st_dev and st_ino, so hard and symbolic links are
  caught), or lies inside an input folder, or is another output of the same command (see
  `command`: the CLI runs each command inside one, and so do dn.train_run and dn.resume).
The new content goes to a temporary `.{name}.tmp-{pid}-{16 hex}` in the target's folder, created
with O_CREAT|O_EXCL|O_NOFOLLOW (a planted file or link is never followed or reused), and is renamed
onto the target with os.replace: a reader, or a crash, sees the previous file or the complete new
one. durable=True (checkpoints) also fsyncs the file before the rename and the folder after it.
A writer killed outright leaves its temporary behind; the next write beside the same target removes
those whose process is gone or that are older than STALE_SECONDS.
"""

from .files import (
    STALE_SECONDS,
    output_folder,
    probe_writable,
    publish,
    readable_output,
    remove_stale,
    replacing,
    resumable,
    scratch_folder,
    write_bytes,
    write_text,
    writing,
)
from .guard import Command, OutputError, check_target, command, current, declare_input, declare_output

__all__ = ["OutputError", "Command", "command", "current", "declare_input", "declare_output", "check_target",
           "writing", "replacing", "write_bytes", "write_text", "output_folder", "publish", "remove_stale",
           "readable_output", "probe_writable", "scratch_folder", "resumable", "STALE_SECONDS"]
