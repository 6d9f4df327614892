//  A real CZMQ 4.2.1 zbeacon, for interop tests (tests/discovery.rs).
//
//  usage: zbeacon_node PORT MILLISECONDS PUBLISH-HEX FILTER-HEX
//  Configures a zbeacon on PORT (interface from ZSYS_INTERFACE as CZMQ
//  reads it), publishes PUBLISH-HEX every 100 ms unless it is "-",
//  subscribes to FILTER-HEX unless it is "-", and for MILLISECONDS prints
//  "HOSTNAME h" then one "BEACON address hex" line per beacon received.

#include <czmq.h>

static size_t
s_unhex (const char *hex, byte *out, size_t max)
{
    size_t n = 0;
    while (hex [0] && hex [1] && n < max) {
        unsigned int v;
        if (sscanf (hex, "%2x", &v) != 1)
            break;
        out [n++] = (byte) v;
        hex += 2;
    }
    return n;
}

int
main (int argc, char *argv [])
{
    if (argc != 5) {
        fprintf (stderr, "usage: zbeacon_node PORT MILLISECONDS PUBLISH-HEX FILTER-HEX\n");
        return 2;
    }
    int port = atoi (argv [1]);
    int64_t duration = atoi (argv [2]);
    zactor_t *beacon = zactor_new (zbeacon, NULL);
    assert (beacon);
    zsock_send (beacon, "si", "CONFIGURE", port);
    char *hostname = zstr_recv (beacon);
    printf ("HOSTNAME %s\n", hostname? hostname: "");
    fflush (stdout);
    zstr_free (&hostname);

    byte data [255];
    if (strcmp (argv [3], "-")) {
        size_t size = s_unhex (argv [3], data, sizeof data);
        zsock_send (beacon, "sbi", "PUBLISH", data, size, 100);
    }
    if (strcmp (argv [4], "-")) {
        size_t size = s_unhex (argv [4], data, sizeof data);
        zsock_send (beacon, "sb", "SUBSCRIBE", data, size);
    }
    zsock_set_rcvtimeo (beacon, 50);
    int64_t end = zclock_mono () + duration;
    while (zclock_mono () < end) {
        zmsg_t *msg = zmsg_recv (beacon);
        if (!msg)
            continue;
        char *address = zmsg_popstr (msg);
        zframe_t *frame = zmsg_pop (msg);
        if (address && frame) {
            printf ("BEACON %s ", address);
            for (size_t i = 0; i < zframe_size (frame); i++)
                printf ("%02x", zframe_data (frame) [i]);
            printf ("\n");
            fflush (stdout);
        }
        zstr_free (&address);
        zframe_destroy (&frame);
        zmsg_destroy (&msg);
    }
    zactor_destroy (&beacon);
    return 0;
}
