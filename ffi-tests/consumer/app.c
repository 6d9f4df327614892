/*  app.c - a program that uses an installed zgossip: one include, one
    library. */

#include <stdio.h>
#include <string.h>

#include <zgossip.h>

int
main (void)
{
    zgossip_t *node = zgossip_new ("app");
    if (!node) {
        fprintf (stderr, "zgossip_new: %s\n", zgossip_last_error ());
        return 1;
    }
    zgossip_set_rcvtimeo (node, 5000);
    if (zgossip_sendx (node, "BIND", "inproc://app", NULL)
    ||  zgossip_sendx (node, "PUBLISH", "service/app", "inproc://app", NULL)) {
        fprintf (stderr, "zgossip_sendx: %s\n", zgossip_last_error ());
        zgossip_destroy (&node);
        return 1;
    }
    char *command, *key, *value;
    int frames = zgossip_recvx (node, &command, &key, &value, NULL);
    int ok = frames == 3 && strcmp (command, "DELIVER") == 0
          && strcmp (key, "service/app") == 0 && strcmp (value, "inproc://app") == 0;
    if (frames < 0)
        fprintf (stderr, "zgossip_recvx: %s\n", zgossip_last_error ());
    zgossip_str_free (&command);
    zgossip_str_free (&key);
    zgossip_str_free (&value);
    zgossip_destroy (&node);

    int major, minor, patch;
    zgossip_version (&major, &minor, &patch);
    printf ("app: zgossip %d.%d.%d: %s\n", major, minor, patch, ok? "OK": "FAILED");
    return ok? 0: 1;
}
