"""The limits on one course read, declared once for both readers (OLX exports and the modulestore).

A course that goes past one of them is refused with a CourseReadError that names the course and the
block (or the file and line) where the walk stopped; nothing past a limit is ever read. Each value is
far above what real courses need and low enough that a corrupt or hostile course cannot take the host
with it: a cycle in a course structure once made a walk insert 9.75 million rows in 25 seconds.

The readers look these names up when a walk starts, so a test can lower one with ``monkeypatch``.
"""

from __future__ import annotations

#: Levels of blocks below the course root (the root is depth 0). Open edX courses are 4 to 7 deep
#: (course, section, subsection, unit, then split_test/library_content groups and their children);
#: the outline stores the depth as UInt8. The OLX reader's ``max_depth`` defaults to it.
MAX_DEPTH = 32

#: Blocks of one course, its detached blocks included: about 20 times the largest courses seen in
#: the field (tens of thousands of blocks), and well inside the outline's UInt32 ``order_in_course``.
MAX_BLOCKS = 1_000_000

#: Children of one block. The outline numbers sections, subsections and units from 1 in UInt16
#: columns (``section_ordinal`` and the others), so 65,535 is the most a position can be given.
MAX_CHILDREN = 65_535

#: How many times one file of an OLX export may be parsed in one walk. Each pointer file is read
#: once (a block reached twice is one block); a file is parsed again only when several ``filename=``
#: attributes name it, or through other names of the same file (symbolic links, case-insensitive file
#: systems). Real courses name a file at most twice; past this, the reference is a problem.
MAX_PARSES_PER_FILE = 64
