/*  =========================================================================
    persist.c - a node with a data directory (SET store/path), through the
    command alone: closed and opened again, it holds its tuples; a deleted
    key stays deleted; a second node is refused the directory.
    =========================================================================
*/

#define _POSIX_C_SOURCE 200809L
#undef NDEBUG                   //  the checks are asserts: keep them
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zgossip.h>
#include "test_support.h"

//  GET key: the value, or NULL when the node does not hold it (freed by
//  the caller)
static char *
get (zgossip_t *node, const char *key)
{
    assert (zgossip_sendx (node, "GET", key, NULL) == 0);
    char *command = NULL, *got = NULL, *value = NULL;
    assert (zgossip_recvx (node, &command, &got, &value, NULL) >= 2);
    assert (streq (command, "VALUE") && streq (got, key));
    zgossip_str_free (&command);
    zgossip_str_free (&got);
    return value;
}

int
main (void)
{
    char dir [] = "/tmp/zgossip-ffi-persist-XXXXXX";
    assert (mkdtemp (dir));
    char data [sizeof dir + 8];
    snprintf (data, sizeof data, "%s/data", dir);

    zgossip_t *node = zgossip_new ("persist");
    assert (node);
    zgossip_set_rcvtimeo (node, 5000);
    assert (zgossip_sendx (node, "SET", "store/fsync", "always", NULL) == 0);
    assert (zgossip_sendx (node, "SET", "store/path", data, NULL) == 0);
    assert (zgossip_sendx (node, "PUBLISH", "kept", "value", NULL) == 0);
    assert (zgossip_sendx (node, "PUBLISH", "deleted", "x", NULL) == 0);
    assert (zgossip_sendx (node, "UNPUBLISH", "deleted", NULL) == 0);

    //  A second node is refused the directory while the first holds it
    zgossip_t *other = zgossip_new ("other");
    assert (other);
    int rc = zgossip_sendx (other, "SET", "store/path", data, NULL);
    assert (rc == -1);             //  zgossip_sendx: 0 or -1
    assert (strstr (zgossip_last_error (), "in use by another node"));
    //  A bad fsync setting is refused with a message
    rc = zgossip_sendx (other, "SET", "store/fsync", "0", NULL);
    assert (rc == -1);             //  zgossip_sendx: 0 or -1
    assert (strstr (zgossip_last_error (), "between 1 and 60000"));
    zgossip_destroy (&other);
    zgossip_destroy (&node);

    //  Opened again: the tuples are there before any network
    node = zgossip_new ("persist-again");
    assert (node);
    zgossip_set_rcvtimeo (node, 5000);
    assert (zgossip_sendx (node, "SET", "store/path", data, NULL) == 0);
    char *value = get (node, "kept");
    assert (value && streq (value, "value"));
    zgossip_str_free (&value);
    value = get (node, "deleted");
    assert (value == NULL);
    assert (zgossip_sendx (node, "STATUS", NULL) == 0);
    char *command = NULL, *count = NULL;
    assert (zgossip_recvx (node, &command, &count, NULL) == 2);
    assert (streq (command, "STATUS") && streq (count, "1"));
    zgossip_str_free (&command);
    zgossip_str_free (&count);
    zgossip_destroy (&node);

    char cmd [sizeof dir + 16];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    printf ("persist: OK\n");
    return 0;
}
