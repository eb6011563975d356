"""Tests of vigil.vsphere that need no vCenter: fault_text on pyVmomi's own
fault objects, the URL and TLS arguments of a Session (SmartConnect
replaced), task waiting and powering against stand-in objects, the login
read from the environment, the autoscale request, and that importing the
module needs no pyVmomi. integrations/vcenter_test.go runs the two vCenter
scripts against govmomi's simulator.

Run: cd contrib/python && /usr/bin/python3 -m unittest discover -s tests -v
"""

import importlib.util
import os
import socket
import ssl
import subprocess
import sys
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import vigil  # noqa: E402
from vigil import params, vsphere  # noqa: E402

HAVE_PYVMOMI = importlib.util.find_spec("pyVmomi") is not None and importlib.util.find_spec("pyVim") is not None
needs_pyvmomi = unittest.skipUnless(HAVE_PYVMOMI, "pyVmomi is not installed (Debian: python3-pyvmomi)")

SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def run_python(code):
    res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT),
                         capture_output=True, text=True, timeout=60)
    return res


class ImportTest(unittest.TestCase):
    def test_import_vigil_does_not_load_it(self):
        res = run_python("import sys, vigil; print(' '.join(sorted(sys.modules)))")
        self.assertEqual(res.returncode, 0, res.stderr)
        loaded = res.stdout.split()
        for name in ("vigil.vsphere", "vigil.params", "pyVmomi", "pyVim"):
            self.assertNotIn(name, loaded)

    def test_import_without_pyvmomi(self):
        """With pyVmomi unimportable, the module imports and works; opening
        a session is a Failure that names what to install."""
        res = run_python(
            "import sys\n"
            "sys.modules['pyVmomi'] = sys.modules['pyVim'] = None\n"
            "from vigil import vsphere\n"
            "print(vsphere.fault_text(ValueError('no')))\n"
            "try:\n"
            "    vsphere.Session('https://vc.example.com/sdk', 'u', 'p')\n"
            "except vsphere.Failure as e:\n"
            "    print('Failure:', e)\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0], "ValueError: no")
        self.assertTrue(lines[1].startswith("Failure: vigil.vsphere needs pyVmomi 6.7 or later "
                                            "(Debian: python3-pyvmomi): "), lines[1])

    def test_import_loads_no_pyvmomi(self):
        res = run_python("import sys; from vigil import vsphere; "
                         "print(' '.join(m for m in sys.modules if m.startswith(('pyV', 'ssl', '_ssl'))))")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.strip(), "")

    def test_names(self):
        for name in vsphere.__all__:
            self.assertTrue(hasattr(vsphere, name), name)
        self.assertIs(vsphere.Failure, params.Failure)
        self.assertTrue(issubclass(vsphere.TimedOut, vsphere.Failure))


@needs_pyvmomi
class FaultTextTest(unittest.TestCase):
    def setUp(self):
        from pyVmomi import vim, vmodl
        self.vim, self.vmodl = vim, vmodl

    def test_vim_fault(self):
        self.assertEqual(vsphere.fault_text(self.vim.fault.InvalidState(msg="The operation is not allowed")),
                         "InvalidState: The operation is not allowed")

    def test_system_error_with_reason(self):
        err = self.vmodl.fault.SystemError(msg="A general system error occurred", reason="disk full")
        self.assertEqual(vsphere.fault_text(err), "SystemError: A general system error occurred; disk full")

    def test_fault_messages_and_repeats(self):
        msg = self.vmodl.LocalizableMessage(key="k1", message="datastore LocalDS_0 is full")
        same = self.vmodl.LocalizableMessage(key="k2", message="A general system error occurred")
        err = self.vmodl.fault.SystemError(msg="A general system error occurred", reason="",
                                           faultMessage=[msg, same])
        self.assertEqual(vsphere.fault_text(err),
                         "SystemError: A general system error occurred; datastore LocalDS_0 is full")

    def test_bare_fault(self):
        self.assertEqual(vsphere.fault_text(self.vim.fault.InvalidPowerState()), "InvalidPowerState")

    def test_failure_text(self):
        self.assertEqual(vsphere.failure_text(vsphere.Failure("clone web-1: not done after 5s")),
                         "clone web-1: not done after 5s")
        self.assertEqual(vsphere.failure_text(self.vim.fault.NotFound(msg="gone")), "NotFound: gone")


class PlainFaultTextTest(unittest.TestCase):
    def test_other_exceptions(self):
        self.assertEqual(vsphere.fault_text(ConnectionRefusedError(111, "Connection refused")),
                         "ConnectionRefusedError: [Errno 111] Connection refused")
        self.assertEqual(vsphere.fault_text(ValueError()), "ValueError")
        self.assertEqual(vsphere.fault_text(vsphere.Failure("x")), "Failure: x")
        self.assertEqual(vsphere.failure_text(KeyError("k")), "KeyError: 'k'")


class TLSTest(unittest.TestCase):
    def test_insecure(self):
        ctx = vsphere.tls_context(insecure=True)
        self.assertEqual(ctx.verify_mode, ssl.CERT_NONE)
        self.assertFalse(ctx.check_hostname)

    def test_verified(self):
        ctx = vsphere.tls_context()
        self.assertEqual(ctx.verify_mode, ssl.CERT_REQUIRED)
        self.assertTrue(ctx.check_hostname)

    @unittest.skipUnless(os.path.exists(SYSTEM_CA), "no " + SYSTEM_CA)
    def test_ca(self):
        with open(SYSTEM_CA) as f:
            pem = f.read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        ctx = vsphere.tls_context(ca=pem)
        self.assertEqual(ctx.verify_mode, ssl.CERT_REQUIRED)
        self.assertEqual(ctx.cert_store_stats()["x509_ca"], 1)

    def test_ca_not_pem(self):
        with self.assertRaises(ssl.SSLError):
            vsphere.tls_context(ca="not a certificate")


class FakeServiceInstance:
    def __init__(self):
        self.content = mock.Mock(name="content")

    def RetrieveContent(self):
        return self.content


@needs_pyvmomi
class SessionTest(unittest.TestCase):
    def connect(self, url, **kw):
        """A Session with SmartConnect replaced; returns it and the
        arguments SmartConnect had."""
        calls = []

        def smart_connect(**args):
            calls.append(args)
            return FakeServiceInstance()
        with mock.patch("pyVim.connect.SmartConnect", smart_connect):
            vc = vsphere.Session(url, "administrator@vsphere.local", "secret", **kw)
        return vc, calls[0]

    def test_url_defaults(self):
        vc, args = self.connect("vc.example.com")
        self.assertEqual((args["host"], args["port"], args["path"]), ("vc.example.com", 443, "/sdk"))
        self.assertEqual((args["user"], args["pwd"]), ("administrator@vsphere.local", "secret"))
        self.assertEqual(vc.where, "vc.example.com:443")
        self.assertEqual(args["sslContext"].verify_mode, ssl.CERT_REQUIRED)
        self.assertEqual(vc.poll, 2.0)

    def test_url_given(self):
        vc, args = self.connect("https://10.1.2.3:8443/custom/sdk", insecure=True, poll=0.5)
        self.assertEqual((args["host"], args["port"], args["path"]), ("10.1.2.3", 8443, "/custom/sdk"))
        self.assertEqual(vc.where, "10.1.2.3:8443")
        self.assertEqual(args["sslContext"].verify_mode, ssl.CERT_NONE)
        self.assertEqual(vc.poll, 0.5)

    def test_bad_urls(self):
        for url in ("http://vc.example.com/sdk", "https:///sdk", "ftp://vc/sdk", ""):
            with self.assertRaises(vsphere.Failure) as cm:
                vsphere.Session(url, "u", "p")
            self.assertEqual(str(cm.exception), "vcenter_url must be an https URL such as "
                                                "https://vcenter.example.com/sdk, got %r" % url)

    def test_bad_ca(self):
        with self.assertRaises(ssl.SSLError):
            vsphere.Session("https://vc.example.com/sdk", "u", "p", ca="not a certificate")

    def test_connect_fails(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(vsphere.Failure) as cm:
            vsphere.Session("https://127.0.0.1:%d/sdk" % port, "u", "p", insecure=True)
        self.assertTrue(str(cm.exception).startswith("connect to vCenter 127.0.0.1:%d: ConnectionRefusedError" % port),
                        str(cm.exception))

    def test_close_and_context_manager(self):
        vc, _ = self.connect("vc.example.com")
        with mock.patch("pyVim.connect.Disconnect") as disconnect:
            with vc as same:
                self.assertIs(same, vc)
            disconnect.assert_called_once_with(vc.si)
        with mock.patch("pyVim.connect.Disconnect", side_effect=OSError("gone")):
            vc.close()  # errors are ignored


class FakeTask:
    """A task whose info.state goes through states, one a look."""

    def __init__(self, *states, error=None, result=None):
        self.states = list(states)
        self.error, self.result = error, result
        self.cancelled = False

    def look(self):
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"info.state": state, "info.error": self.error if state == "error" else None,
                "info.result": self.result if state == "success" else None}

    def CancelTask(self):
        self.cancelled = True
        self.states = ["error"]


class FakeVM:
    def __init__(self, power):
        self.power = power
        self.calls = []

    def task(self, name, then):
        def start():
            self.calls.append(name)
            self.power = then or self.power
            return FakeTask("running", "success")
        return start

    def __getattr__(self, name):
        changes = {"PowerOnVM_Task": "poweredOn", "PowerOffVM_Task": "poweredOff", "Destroy_Task": None}
        if name in changes:
            return self.task(name, changes[name])
        raise AttributeError(name)


@needs_pyvmomi
class TaskTest(unittest.TestCase):
    def setUp(self):
        with mock.patch("pyVim.connect.SmartConnect", lambda **kw: FakeServiceInstance()):
            self.vc = vsphere.Session("vc.example.com", "u", "p", poll=0.001)
        self.vc.props = self.props

    def props(self, obj, *paths):
        if isinstance(obj, FakeTask):
            look = obj.look()
        else:
            look = {"runtime.powerState": obj.power}
        return {p: look.get(p) for p in paths}

    def test_success(self):
        self.assertEqual(self.vc.wait_task(FakeTask("queued", "running", "success", result="vm-42"), 5, "clone"),
                         "vm-42")

    def test_error(self):
        from pyVmomi import vim
        task = FakeTask("running", "error", error=vim.fault.InvalidState(msg="the VM is busy"))
        with self.assertRaises(vsphere.Failure) as cm:
            self.vc.wait_task(task, 5, "power off web-1")
        self.assertNotIsInstance(cm.exception, vsphere.TimedOut)
        self.assertEqual(str(cm.exception), "power off web-1: InvalidState: the VM is busy")

    def test_timeout(self):
        with self.assertRaises(vsphere.TimedOut) as cm:
            self.vc.wait_task(FakeTask("running"), 0.01, "clone web-1")
        self.assertEqual(str(cm.exception), "clone web-1: not done after 0.01s")

    def test_cancel(self):
        task = FakeTask("running")
        self.vc.cancel_task(task)
        self.assertTrue(task.cancelled)
        self.assertEqual(self.vc.task_state(task)[0], "error")

    def test_power(self):
        vm = FakeVM("poweredOff")
        self.assertTrue(self.vc.power_on(vm, 5, "web-1"))
        self.assertFalse(self.vc.power_on(vm, 5, "web-1"))
        self.assertTrue(self.vc.power_off(vm, 5, "web-1"))
        self.assertFalse(self.vc.power_off(vm, 5, "web-1"))
        self.assertEqual(vm.calls, ["PowerOnVM_Task", "PowerOffVM_Task"])

    def test_destroy_powers_off_first(self):
        vm = FakeVM("poweredOn")
        self.vc.destroy(vm, 5, "web-1")
        self.assertEqual(vm.calls, ["PowerOffVM_Task", "Destroy_Task"])
        vm = FakeVM("poweredOff")
        self.vc.destroy(vm, 5, "web-1")
        self.assertEqual(vm.calls, ["Destroy_Task"])


class LoginTest(unittest.TestCase):
    NAMES = ("VCENTER_URL", "VCENTER_USER", "VCENTER_PASSWORD", "VCENTER_CA", "VCENTER_INSECURE")

    def setUp(self):
        patcher = mock.patch.dict(os.environ, {k: v for k, v in os.environ.items()
                                               if not k.startswith("VCENTER_")}, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_login(self):
        os.environ.update(VCENTER_URL=" https://vc/sdk ", VCENTER_USER="u", VCENTER_PASSWORD=" p ",
                          VCENTER_CA=" PEM \n")
        self.assertEqual(vsphere.login_from_env(*self.NAMES),
                         {"url": "https://vc/sdk", "user": "u", "password": " p ", "ca": "PEM", "insecure": False})
        os.environ["VCENTER_INSECURE"] = "Yes"
        self.assertTrue(vsphere.login_from_env(*self.NAMES)["insecure"])

    def test_missing(self):
        os.environ.update(VCENTER_USER="u", VCENTER_INSECURE="maybe")
        with self.assertRaises(vsphere.Failure) as cm:
            vsphere.login_from_env(*self.NAMES)
        self.assertEqual(str(cm.exception), "the vcenter Secret lacks VCENTER_URL, VCENTER_PASSWORD "
                                            "(keys vcenter_url, vcenter_user, vcenter_password)")

    def test_bad_insecure(self):
        os.environ.update(VCENTER_URL="vc", VCENTER_USER="u", VCENTER_PASSWORD="p", VCENTER_INSECURE="maybe")
        with self.assertRaises(vsphere.Failure) as cm:
            vsphere.login_from_env(*self.NAMES)
        self.assertEqual(str(cm.exception), "VCENTER_INSECURE must be true or false, got 'maybe'")


class Grow(vsphere.AutoscaleRequest):
    EVENT = "SERVER_AUTOSCALE_OUT"
    INFO = "server_autoscaleout_info"
    LABEL = "scale-out"
    COMPLETE = ("server_autoscaleout_complete_info", "nscaleout", "scaled_out_servers")


def event_alert(info=None, **ev):
    ev = dict({"event_id": "SERVER_AUTOSCALE_OUT", "report_timestamp": 1764090000}, **ev)
    if info is not None:
        ev["event_details"] = {"server_autoscaleout_info": info}
    a = vigil.alert({"name": "a", "obj_name": "alert-pool", "obj_uuid": "alert-uuid", "reason": "alert reason",
                     "events": [ev]})
    return a, a.event


class AutoscaleRequestTest(unittest.TestCase):
    def test_fields(self):
        req = Grow(*event_alert({"pool": "web", "pool_ref": "pool-1", "reason": "busy", "request_id": "r-1"},
                                obj_name="ev-pool"))
        self.assertEqual((req.pool, req.pool_ref, req.reason, req.request_id, req.count, req.error),
                         ("web", "pool-1", "busy", "r-1", 0, None))
        req.count = 1
        self.assertEqual(req.failed("no"), {"server_autoscale_failed_info": {
            "pool_ref": "pool-1", "pool": "web", "num_servers": 1, "reason": "no", "request_id": "r-1"}})
        self.assertEqual(req.complete([{"ip": "10.0.0.5", "port": 80, "hostname": "web-1"}]), {
            "server_autoscaleout_complete_info": {
                "nscaleout": 1,
                "scaled_out_servers": [{"ip": {"addr": "10.0.0.5", "type": "V4"}, "port": 80, "hostname": "web-1"}],
                "pool_ref": "pool-1", "pool": "web", "reason": "busy", "request_id": "r-1"}})

    def test_fallbacks(self):
        req = Grow(*event_alert("not a dict", obj_name="ev-pool", obj_uuid="ev-uuid"))
        self.assertEqual((req.pool, req.pool_ref, req.reason, req.request_id, req.info),
                         ("ev-pool", "ev-uuid", "alert reason", "ev-pool-1764090000", {}))
        req = Grow(*event_alert(None))
        self.assertEqual((req.pool, req.pool_ref), ("alert-pool", "alert-uuid"))

    def test_no_pool(self):
        a = vigil.alert({"name": "a", "events": [{"event_id": "SERVER_AUTOSCALE_OUT"}]})
        with self.assertRaises(vsphere.Failure) as cm:
            Grow(a, a.event)
        self.assertEqual(str(cm.exception), "the SERVER_AUTOSCALE_OUT event names no pool "
                                            "(event_details.server_autoscaleout_info.pool, obj_name)")


class ConnectionTest(unittest.TestCase):
    def test_lazy(self):
        made = []

        class Settings:
            login = {"url": "vc", "user": "u", "password": "p", "ca": "", "insecure": True}
            poll = 0.25

            def __init__(self):
                made.append(self)
        conn = vsphere.Connection(Settings)
        conn.close()  # nothing opened: nothing to close
        self.assertEqual(made, [])
        with mock.patch.object(vsphere, "Session") as session:
            self.assertIs(conn.settings(), made[0])
            vc = conn.session()
            self.assertIs(conn.session(), vc)
            session.assert_called_once_with(poll=0.25, url="vc", user="u", password="p", ca="", insecure=True)
            conn.close()
            vc.close.assert_called_once_with()
        self.assertEqual(len(made), 1)


if __name__ == "__main__":
    unittest.main()
