"""Tests of vigil.params: a ControlScript's parameters and Secret keys read
from its environment (test_notify.py tests param, number and secret through
vigil.notify, which gives the same functions).

Run: cd contrib/python && /usr/bin/python3 -m unittest discover -s tests -v
"""

import os
import sys
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from vigil import notify, params  # noqa: E402


class ParamsTest(unittest.TestCase):
    def setUp(self):
        patcher = mock.patch.dict(os.environ, {k: v for k, v in os.environ.items()
                                               if not k.startswith("P_")}, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def fails(self, fn, *args):
        with self.assertRaises(params.Failure) as cm:
            fn(*args)
        self.assertIsNone(cm.exception.status)
        return str(cm.exception)

    def test_notify_gives_the_same(self):
        for name in ("Failure", "param", "number", "secret"):
            self.assertIs(getattr(notify, name), getattr(params, name), name)
        for name in params.__all__:
            self.assertTrue(hasattr(params, name), name)

    def test_failure(self):
        self.assertEqual(params.Failure("x", 502).status, 502)
        self.assertEqual(str(params.Failure("one line")), "one line")

    def test_flag(self):
        self.assertIs(params.flag("P_F", "false"), False)
        self.assertIs(params.flag("P_F", "true"), True)
        for value, want in (("1", True), (" Yes ", True), ("ON", True), ("true", True),
                            ("0", False), ("no", False), ("Off", False), ("FALSE", False), ("  ", False)):
            os.environ["P_F"] = value
            self.assertIs(params.flag("P_F", "false"), want, value)
        os.environ["P_F"] = "Maybe"
        self.assertEqual(self.fails(params.flag, "P_F", "false"), "P_F must be true or false, got 'maybe'")

    def test_seconds(self):
        self.assertEqual(params.seconds("P_S", "600"), 600.0)
        for value, want in (("90", 90), ("90s", 90), ("1.5m", 90), ("2h", 7200), ("250ms", 0.25), ("3.", 3)):
            os.environ["P_S"] = value
            self.assertAlmostEqual(params.seconds("P_S", "600"), want, msg=value)
        for value in ("-1", "10 m", "1d", "m", ".5", "soon"):
            os.environ["P_S"] = value
            self.assertEqual(self.fails(params.seconds, "P_S", "600"),
                             "P_S must be seconds or a duration such as 90s or 10m, got %r" % value)

    def test_port(self):
        self.assertEqual(params.port("P_P", "80"), 80)
        os.environ["P_P"] = " 8080 "
        self.assertEqual(params.port("P_P", "80"), 8080)
        for value in ("0", "65536", "http", "-1", "80.0"):
            os.environ["P_P"] = value
            self.assertEqual(self.fails(params.port, "P_P", "80"),
                             "P_P must be a port from 1 to 65535, got %r" % value)


if __name__ == "__main__":
    unittest.main()
