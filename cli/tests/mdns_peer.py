"""The python-zeroconf side of cli/tests/mdns.rs: an mDNS implementation
no one here wrote, run inside the test's network namespaces.

    mdns_peer.py browse ADDR SECONDS
        prints one JSON line per _zgossip._tcp service resolved:
        {"event": "resolved", "name", "port", "addresses", "txt": {key: value}}
    mdns_peer.py register ADDR SECONDS JSON
        JSON is a list of {"name", "port", "address", "txt": {key: value}}
        (a value's characters 0-255 are its bytes, so garbage can be sent);
        registers them, prints {"event": "registered", "name"} for each,
        and unregisters them after SECONDS.

ADDR is the namespace's own address: the only interface used. Every run
ends by itself after SECONDS (at most 300).
"""

import json
import socket
import sys
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf

TYPE = "_zgossip._tcp.local."


def say(obj):
    print(json.dumps(obj), flush=True)


def browse(zc, seconds):
    def resolve(name):
        info = zc.get_service_info(TYPE, name, timeout=3000)
        if info is None:
            return
        txt = {
            k.decode("latin-1"): None if v is None else v.decode("latin-1")
            for k, v in info.properties.items()
        }
        say(
            {
                "event": "resolved",
                "name": name,
                "port": info.port,
                "addresses": info.parsed_addresses(),
                "txt": txt,
            }
        )

    class Listener:
        def add_service(self, _zc, _type, name):
            resolve(name)

        def update_service(self, _zc, _type, name):
            resolve(name)

        def remove_service(self, _zc, _type, name):
            say({"event": "removed", "name": name})

    ServiceBrowser(zc, TYPE, Listener())
    time.sleep(seconds)


def register(zc, seconds, services):
    infos = []
    for s in services:
        props = {k.encode("latin-1"): v.encode("latin-1") for k, v in s["txt"].items()}
        info = ServiceInfo(
            TYPE,
            f"{s['name']}.{TYPE}",
            addresses=[socket.inet_aton(s["address"])],
            port=s["port"],
            properties=props,
            server=f"{s['name']}.local.",
        )
        zc.register_service(info)
        infos.append(info)
        say({"event": "registered", "name": s["name"]})
    time.sleep(seconds)
    for info in infos:
        zc.unregister_service(info)


def main():
    what, addr, seconds = sys.argv[1], sys.argv[2], min(float(sys.argv[3]), 300.0)
    zc = Zeroconf(interfaces=[addr], ip_version=IPVersion.V4Only)
    try:
        if what == "browse":
            browse(zc, seconds)
        elif what == "register":
            register(zc, seconds, json.loads(sys.argv[4]))
        else:
            sys.exit(f"unknown command {what}")
    finally:
        zc.close()


if __name__ == "__main__":
    main()
