/*  A bad ZGOSSIP_IO_CPUS (ctest sets it for this test alone): zgossip_new
    returns NULL and zgossip_last_error says what is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zgossip.h>

int main (void)
{
    zgossip_t *node = zgossip_new ("cpus");
    if (node) {
        fprintf (stderr, "a node started with ZGOSSIP_IO_CPUS=%s\n",
                 getenv ("ZGOSSIP_IO_CPUS"));
        zgossip_destroy (&node);
        return 1;
    }
    const char *why = zgossip_last_error ();
    if (!strstr (why, "ZGOSSIP_IO_CPUS") || !strstr (why, "`x` is not a CPU number")) {
        fprintf (stderr, "unexpected error: %s\n", why);
        return 1;
    }
    printf ("refused as expected: %s\n", why);
    return 0;
}
