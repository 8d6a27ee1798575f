"""free_port - free TCP ports on 127.0.0.1 for the nodes a test or the demo starts.

Part of gokart-exchange; MIT licence.

usage: /usr/bin/python3 free_port.py [COUNT]   (prints COUNT distinct ports, default 1)
       from free_port import free_ports

A port the kernel picks with bind(0) comes from its ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range), the range client connections take their source ports
from. Between the test learning the port and the node binding it, another suite's client
connection (suites run in parallel, some with floods of thousands) could take it: the node then
fails to start with "Address already in use". These ports come from below that range instead,
where only another test's choice can collide, and each is checked free by binding it.
"""
import random
import socket
import sys

LOWEST = 10000
TRIES = 1000


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count=1):
    """count distinct free ports on 127.0.0.1, below the ephemeral range when it leaves room."""
    high = _ephemeral_low() - 1
    ports = []
    if high - LOWEST >= 1000:
        for _ in range(TRIES):
            port = random.randint(LOWEST, high)
            if port not in ports and _bindable(port):
                ports.append(port)
                if len(ports) == count:
                    return ports
    # No room below the range (or no luck): let the kernel choose.
    socks = [socket.socket() for _ in range(count - len(ports))]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return ports + [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    print(" ".join(str(p) for p in free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1)))
