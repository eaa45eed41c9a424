"""dbkeeper.plugin.error_line: a database library's error as one line, passwords masked."""

from dbkeeper.connections.urls import remember_secret
from dbkeeper.plugin import error_line


class Wrapper(Exception):
    """Like SQLAlchemy's DBAPIError: the driver's error in .orig."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__(f"(wrapped) {orig}")
        self.orig = orig


class ProgrammingError(Exception):
    pass


def test_a_coded_error_reads_code_then_message_on_one_line():
    error = ProgrammingError(1064, "You have an error in your SQL syntax near 'CREAT\n  TABLE' at line 1")
    assert error_line(error) == "(1064) You have an error in your SQL syntax near 'CREAT TABLE' at line 1"


def test_other_errors_keep_their_first_line():
    error = ProgrammingError('relation "nope" does not exist\nLINE 1: SELECT * FROM nope\n                      ^')
    assert error_line(error) == 'relation "nope" does not exist'


def test_the_wrapped_driver_error_speaks_and_can_be_named():
    error = Wrapper(ProgrammingError("no such table: x"))
    assert error_line(error) == "no such table: x"
    assert error_line(error, with_type=True) == "ProgrammingError: no such table: x"


def test_an_error_without_a_message_is_named_by_its_type():
    assert error_line(ProgrammingError()) == "ProgrammingError"
    assert error_line(ProgrammingError("  \n")) == "ProgrammingError"


def test_passwords_are_masked():
    remember_secret("hunter2-secret")
    error = ProgrammingError("cannot log in to postgresql://app:pw@db/app with hunter2-secret")
    assert error_line(error) == "cannot log in to postgresql://app:***@db/app with ***"
