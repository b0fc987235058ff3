//! Black-box tests of the whole service live in tests/tests/.
