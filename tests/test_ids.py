"""Random ids: distinct, the right shape, and never shared with a forked worker."""

import os
import re

from gateway.ids import random_hex


def test_ids_are_hex_of_the_asked_size_and_distinct_across_refills():
    ids = [random_hex(16) for _ in range(2000)]  # ~8 refills of the buffer
    assert all(re.fullmatch(r"[0-9a-f]{32}", each) for each in ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"[0-9a-f]{16}", random_hex(8))


def test_a_forked_child_draws_other_ids_than_its_parent():
    random_hex(16)  # the parent's buffer holds bytes the child must not reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, "".join(random_hex(16) for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode()
    os.close(read)
    parent = "".join(random_hex(16) for _ in range(10))
    assert len(child) == 320 and child != parent
