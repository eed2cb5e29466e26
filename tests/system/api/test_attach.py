"""POST /containers/{id}/attach as Docker's clients use it: `docker start -a` of an exited
container (the attach comes before the start), the stdout/stderr selection, and logs=1 with and
without stream (docker-py's attach(logs=True, stream=False))."""
import unittest

from api_fixture import IMAGE, DockerPyTestCase, recv_all


def read_all(sock):
    """What docker-py's attach socket delivers until the service closes it."""
    sock._sock.settimeout(30)
    data = recv_all(sock._sock)
    sock.close()
    return data


class AttachTest(DockerPyTestCase):
    def create(self, name, script):
        self.docker("create", "--name", name, IMAGE, "sh", "-c", script)
        self.made.append(name)

    def test_docker_start_attach_of_an_exited_container(self):
        self.create("att-again", "echo out-$$; echo err >&2; exit 3")
        first = self.docker("start", "-a", "att-again", check=False)
        self.assertEqual(first.returncode, 3, first.stderr)
        self.assertIn("out-", first.stdout)
        # The container has exited: before, the attach was refused (409) and the CLI failed with
        # "unable to upgrade to tcp, received 409".
        state = self.docker("inspect", "-f", "{{.State.Status}}", "att-again").stdout.strip()
        self.assertEqual(state, "exited")
        for _ in range(3):
            again = self.docker("start", "-a", "att-again", check=False)
            self.assertEqual(again.returncode, 3, again.stderr)
            self.assertIn("out-", again.stdout)
            self.assertIn("err", again.stderr)
        state = self.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                            "att-again").stdout.strip()
        self.assertEqual(state, "exited 3")

    def test_stream_selection(self):
        self.create("att-sel", "echo to-out; echo to-err >&2")
        c = self.client.containers.get("att-sel")
        sock = self.client.api.attach_socket(c.id, params={"stdout": 1, "stderr": 0,
                                                           "stream": 1})
        c.start()
        data = read_all(sock)
        self.assertIn(b"to-out", data)
        self.assertNotIn(b"to-err", data)
        self.assertEqual(c.wait(timeout=30)["StatusCode"], 0)

    def test_logs_without_stream(self):
        self.create("att-logs", "echo first; echo second >&2")
        c = self.client.containers.get("att-logs")
        c.start()
        self.assertEqual(c.wait(timeout=30)["StatusCode"], 0)
        out = c.attach(stdout=True, stderr=True, logs=True, stream=False)
        self.assertIn(b"first", out)
        self.assertIn(b"second", out)
        only_err = c.attach(stdout=False, stderr=True, logs=True, stream=False)
        self.assertIn(b"second", only_err)
        self.assertNotIn(b"first", only_err)
        # logs=1 without stream neither starts nor re-creates the container.
        self.assertEqual(self.docker("inspect", "-f", "{{.State.Status}}",
                                     "att-logs").stdout.strip(), "exited")

    def test_logs_then_stream(self):
        self.create("att-both", "echo run-$(cat /proc/sys/kernel/random/uuid | cut -c1-8)")
        c = self.client.containers.get("att-both")
        c.start()
        self.assertEqual(c.wait(timeout=30)["StatusCode"], 0)
        earlier = c.logs().decode().strip()
        sock = self.client.api.attach_socket(c.id, params={"stdout": 1, "stderr": 1,
                                                           "stream": 1, "logs": 1})
        c.start()
        text = read_all(sock).decode(errors="replace")
        self.assertIn(earlier, text)  # the log of the first run
        self.assertEqual(text.count("run-"), 2, text)  # and the new run's line

    def test_log_asked_for_before_the_removal_is_read_after_it(self):
        # docker-py's containers.run(): the log is asked for (follow=1), the container waited
        # for and removed, and only then is the answer read. It came back empty now and then.
        for i in range(5):
            self.create("att-gone-%d" % i, "echo line-%d" % i)
            c = self.client.containers.get("att-gone-%d" % i)
            c.start()
            out = self.client.api.logs(c.id, stream=True, follow=True)
            self.assertEqual(c.wait(timeout=30)["StatusCode"], 0)
            c.remove()
            self.assertEqual(b"".join(out), b"line-%d\n" % i)


if __name__ == "__main__":
    unittest.main()
