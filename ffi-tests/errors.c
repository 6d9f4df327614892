/*  =========================================================================
    errors.c - bad arguments to the zgossip C API: each returns its code,
    zgossip_last_error () says why, outputs are left alone, nothing crashes.
    =========================================================================
*/

#define _POSIX_C_SOURCE 200809L
#undef NDEBUG                   //  the checks are asserts: keep them
#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zgossip.h>
#include "test_support.h"

//  Asserts a return code and that the last error mentions `what`
#define expect_error(call, code, what) do { \
    int rc_ = (call); \
    if (rc_ != -(code) || !strstr (zgossip_last_error (), (what))) { \
        fprintf (stderr, "%s:%d: %s returned %d (%s), last error '%s'; " \
                 "expected %d and a message with '%s'\n", __FILE__, __LINE__, \
                 #call, rc_, zgossip_result_name (rc_), zgossip_last_error (), \
                 -(code), (what)); \
        abort (); \
    } \
} while (0)

//  Reads one STATUS with zgossip_recv_view on a thread of its own
static void *
view_thread (void *arg)
{
    zgossip_t *node = (zgossip_t *) arg;
    const char *view [2];
    assert (zgossip_str_send (node, "STATUS") == 0);
    assert (zgossip_recv_view (node, 5000, view, 2) == 2);
    assert (streq (view [0], "STATUS") && streq (view [1], "1"));
    return NULL;
}

static void *
other_thread (void *arg)
{
    (void) arg;
    //  The last error is per thread: nothing failed on this one
    assert (streq (zgossip_last_error (), ""));
    return NULL;
}

int
main (void)
{
    const char *status [] = { "STATUS" };

    //  NULL name
    assert (zgossip_new (NULL) == NULL);
    assert (strstr (zgossip_last_error (), "name is NULL"));

    //  Non-UTF-8 name
    assert (zgossip_new ("caf\xe9") == NULL);
    assert (strstr (zgossip_last_error (), "UTF-8"));

    zgossip_t *node = zgossip_new ("errors");
    assert (node);

    //  NULL self
    expect_error (zgossip_send (NULL, status, 1), ZGOSSIP_ERR_NULL_ARG, "node is NULL");
    expect_error (zgossip_str_send (NULL, "STATUS"), ZGOSSIP_ERR_NULL_ARG, "node is NULL");
    expect_error (zgossip_fd (NULL), ZGOSSIP_ERR_NULL_ARG, "node is NULL");
    expect_error (zgossip_rcvtimeo (NULL), ZGOSSIP_ERR_NULL_ARG, "node is NULL");
    char **frames = NULL;
    size_t count = 0;
    expect_error (zgossip_recv (NULL, 0, &frames, &count), ZGOSSIP_ERR_NULL_ARG, "node is NULL");
    assert (zgossip_sendx (NULL, "STATUS", NULL) == -1);
    assert (strstr (zgossip_last_error (), "node is NULL"));
    char *command = (char *) "untouched";
    assert (zgossip_recvx (NULL, &command, NULL) == -1);
    assert (command == NULL);
    zgossip_set_rcvtimeo (NULL, 10);
    assert (strstr (zgossip_last_error (), "node is NULL"));

    //  NULL frames, NULL frame, NULL outputs
    expect_error (zgossip_send (node, NULL, 1), ZGOSSIP_ERR_NULL_ARG, "frames is NULL");
    const char *holey [] = { "PUBLISH", NULL, "value" };
    expect_error (zgossip_send (node, holey, 3), ZGOSSIP_ERR_NULL_ARG, "frames[1] is NULL");
    expect_error (zgossip_str_send (node, NULL), ZGOSSIP_ERR_NULL_ARG, "command is NULL");
    expect_error (zgossip_recv (node, 0, NULL, &count), ZGOSSIP_ERR_NULL_ARG, "frames_out is NULL");
    expect_error (zgossip_recv (node, 0, &frames, NULL), ZGOSSIP_ERR_NULL_ARG, "count_out is NULL");

    //  count 0, and sendx with no frame at all
    expect_error (zgossip_send (node, status, 0), ZGOSSIP_ERR_COMMAND, "empty command");
    assert (zgossip_sendx (node, NULL) == -1);
    assert (strstr (zgossip_last_error (), "empty command"));

    //  Invalid UTF-8
    const char *latin1 [] = { "PUBLISH", "caf\xe9", "value" };
    expect_error (zgossip_send (node, latin1, 3), ZGOSSIP_ERR_UTF8, "frames[1] is not valid UTF-8");

    //  Unknown command, wrong case, wrong arguments, bad endpoint
    expect_error (zgossip_str_send (node, "FROBNICATE"), ZGOSSIP_ERR_COMMAND,
                  "unknown command 'FROBNICATE'");
    expect_error (zgossip_str_send (node, "status"), ZGOSSIP_ERR_COMMAND, "unknown command 'status'");
    expect_error (zgossip_str_send (node, "BIND"), ZGOSSIP_ERR_COMMAND, "BIND takes 1 argument");
    assert (zgossip_sendx (node, "CONNECT", "nowhere", NULL) == -1);
    assert (strlen (zgossip_last_error ()) > 0);

    //  Busy port: the second BIND of the same TCP port fails, and says so
    assert (zgossip_sendx (node, "BIND", "tcp://127.0.0.1:*", NULL) == 0);
    assert (zgossip_sendx (node, "PORT", NULL) == 0);
    zgossip_set_rcvtimeo (node, 5000);
    char *value;
    assert (zgossip_recvx (node, &command, &value, NULL) == 2);
    assert (streq (command, "PORT"));
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%s", value);
    zgossip_str_free (&command);
    zgossip_str_free (&value);
    assert (command == NULL && value == NULL);
    zgossip_t *other = zgossip_new ("other");
    assert (other);
    const char *bind [] = { "BIND", endpoint };
    expect_error (zgossip_send (other, bind, 2), ZGOSSIP_ERR_IO, "cannot bind");
    printf ("busy port: %s\n", zgossip_last_error ());
    zgossip_destroy (&other);

    //  Timeouts: nothing waits; outputs are not written on failure
    frames = (char **) &frames;     //  a sentinel
    count = 77;
    expect_error (zgossip_recv (node, 0, &frames, &count), ZGOSSIP_ERR_TIMEOUT, "no message");
    expect_error (zgossip_recv (node, 20, &frames, &count), ZGOSSIP_ERR_TIMEOUT, "no message");
    assert (frames == (char **) &frames && count == 77);
    expect_error (zgossip_recv (node, -2, &frames, &count), ZGOSSIP_ERR_INVALID_ARG, "timeout_ms");
    zgossip_set_rcvtimeo (node, -5);
    assert (strstr (zgossip_last_error (), "rcvtimeo"));
    assert (zgossip_rcvtimeo (node) == 5000);
    zgossip_set_rcvtimeo (node, 0);
    command = (char *) "untouched";
    value = (char *) "untouched";
    assert (zgossip_recvx (node, &command, &value, NULL) == -1);
    assert (command == NULL && value == NULL);
    assert (strstr (zgossip_last_error (), "no message"));

    //  The pollable fd: readable while a reply waits, not after
    int fd = zgossip_fd (node);
    assert (fd >= 0);
    struct pollfd pfd = { fd, POLLIN, 0 };
    assert (poll (&pfd, 1, 0) == 0);
    assert (zgossip_str_send (node, "STATUS") == 0);
    assert (poll (&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN));
    //  Extra frames are dropped, missing ones set to NULL
    char *extra = (char *) "untouched";
    assert (zgossip_recvx (node, &command, &value, &extra, NULL) == 2);
    assert (streq (command, "STATUS") && streq (value, "0") && extra == NULL);
    zgossip_str_free (&command);
    zgossip_str_free (&value);
    assert (poll (&pfd, 1, 0) == 0);
    assert (zgossip_str_send (node, "STATUS") == 0);
    zgossip_set_rcvtimeo (node, 5000);
    assert (zgossip_recvx (node, &command, NULL) == 2);
    assert (streq (command, "STATUS"));
    zgossip_str_free (&command);

    //  zgossip_recv hands over an array; it is freed in one call
    assert (zgossip_str_send (node, "STATUS") == 0);
    assert (zgossip_recv (node, 5000, &frames, &count) == 2);
    assert (count == 2 && streq (frames [0], "STATUS") && streq (frames [1], "0"));
    zgossip_frames_free (&frames, count);
    assert (frames == NULL);

    //  zgossip_recv_into fills the caller's array: extra frames dropped,
    //  unused slots NULL, every slot NULL on failure
    char *slots [3] = { (char *) "x", (char *) "x", (char *) "x" };
    assert (zgossip_str_send (node, "STATUS") == 0);
    assert (zgossip_recv_into (node, 5000, slots, 1) == 2);
    assert (streq (slots [0], "STATUS") && streq (slots [1], "x"));
    zgossip_str_free (&slots [0]);
    assert (zgossip_str_send (node, "STATUS") == 0);
    assert (zgossip_recv_into (node, 5000, slots, 3) == 2);
    assert (streq (slots [0], "STATUS") && streq (slots [1], "0") && slots [2] == NULL);
    zgossip_str_free (&slots [0]);
    zgossip_str_free (&slots [1]);
    slots [0] = (char *) "x";
    expect_error (zgossip_recv_into (node, 0, slots, 3), ZGOSSIP_ERR_TIMEOUT, "no message");
    assert (slots [0] == NULL);
    expect_error (zgossip_recv_into (node, 0, NULL, 3), ZGOSSIP_ERR_NULL_ARG, "frames is NULL");
    expect_error (zgossip_recv_into (node, -2, slots, 3), ZGOSSIP_ERR_INVALID_ARG, "timeout_ms");

    //  zgossip_recv_view lends the frames: no allocation, nothing to free;
    //  they stay until this thread's next view, slots as recv_into
    const char *view [3] = { "x", "x", "x" };
    assert (zgossip_sendx (node, "PUBLISH", "view-key", "view-value", NULL) == 0);
    assert (zgossip_recv_view (node, 5000, view, 3) == 3);
    assert (streq (view [0], "DELIVER") && streq (view [1], "view-key")
            && streq (view [2], "view-value"));
    assert (zgossip_str_send (node, "STATUS") == 0);
    view [1] = "beyond capacity";
    assert (zgossip_recv_view (node, 5000, view, 1) == 2);
    assert (streq (view [0], "STATUS") && streq (view [1], "beyond capacity"));
    //  Another thread's views are its own: this one's stay as they were
    pthread_t viewer;
    assert (pthread_create (&viewer, NULL, view_thread, node) == 0);
    assert (pthread_join (viewer, NULL) == 0);
    assert (streq (view [0], "STATUS"));
    view [0] = "x";
    expect_error (zgossip_recv_view (node, 0, view, 3), ZGOSSIP_ERR_TIMEOUT, "no message");
    assert (view [0] == NULL);
    expect_error (zgossip_recv_view (node, 0, NULL, 3), ZGOSSIP_ERR_NULL_ARG, "frames is NULL");
    expect_error (zgossip_recv_view (NULL, 0, view, 3), ZGOSSIP_ERR_NULL_ARG, "node is NULL");
    expect_error (zgossip_recv_view (node, -2, view, 3), ZGOSSIP_ERR_INVALID_ARG, "timeout_ms");

    //  A terminated node refuses commands but can still be destroyed
    assert (zgossip_sendx (node, "$TERM", NULL) == 0);
    expect_error (zgossip_send (node, status, 1), ZGOSSIP_ERR_TERMINATED, "terminated");
    expect_error (zgossip_recv (node, 1000, &frames, &count), ZGOSSIP_ERR_TERMINATED, "terminated");

    //  The last error is per thread
    pthread_t thread;
    assert (pthread_create (&thread, NULL, other_thread, NULL) == 0);
    assert (pthread_join (thread, NULL) == 0);
    assert (strstr (zgossip_last_error (), "terminated"));

    //  Names of codes
    assert (streq (zgossip_result_name (-ZGOSSIP_ERR_TIMEOUT), "ZGOSSIP_ERR_TIMEOUT"));
    assert (streq (zgossip_result_name (ZGOSSIP_OK), "ZGOSSIP_OK"));
    assert (streq (zgossip_result_name (12345), "unknown"));

    //  Freeing and destroying NULL is safe
    zgossip_destroy (&node);
    assert (node == NULL);
    zgossip_destroy (&node);
    zgossip_destroy (NULL);
    zgossip_str_free (NULL);
    char *nothing = NULL;
    zgossip_str_free (&nothing);
    zgossip_frames_free (NULL, 3);
    frames = NULL;
    zgossip_frames_free (&frames, 3);

    printf ("errors: OK\n");
    return 0;
}
