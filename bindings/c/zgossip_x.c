/*  =========================================================================
    zgossip_x.c - the variadic CZMQ-style calls of the C API, which stable
    Rust cannot define: zgossip_sendx and zgossip_recvx. build.rs compiles
    this file into libzgossip; they are declared in include/zgossip.h.

    Both are thin: they gather or scatter the frames and call the Rust
    functions zgossip_send and zgossip_recv_into.

    This Source Code Form is subject to the terms of the Mozilla Public
    License, v. 2.0. If a copy of the MPL was not distributed with this
    file, You can obtain one at http://mozilla.org/MPL/2.0/.
    =========================================================================
*/

#include <stdarg.h>
#include <stdlib.h>

#include "zgossip.h"

int
zgossip_sendx (zgossip_t *node, const char *first, ...)
{
    //  Count the frames, then gather them into an array
    size_t count = 0;
    if (first) {
        va_list args;
        va_start (args, first);
        count = 1;
        while (va_arg (args, const char *))
            count++;
        va_end (args);
    }
    //  On the stack for every command; on the heap for a long list
    const char *local [16] = { NULL };
    const char **frames = count <= 16? local: (const char **) malloc (count * sizeof (char *));
    if (!frames)
        return -1;
    if (first) {
        va_list args;
        va_start (args, first);
        frames [0] = first;
        for (size_t i = 1; i < count; i++)
            frames [i] = va_arg (args, const char *);
        va_end (args);
    }
    int rc = zgossip_send (node, frames, count);
    if (frames != local)
        free (frames);
    return rc == 0? 0: -1;
}

int
zgossip_recvx (zgossip_t *node, char **first, ...)
{
    //  Count the string pointers given
    size_t wanted = 0;
    va_list args;
    va_start (args, first);
    for (char **string_p = first; string_p; string_p = va_arg (args, char **))
        wanted++;
    va_end (args);

    //  Receive into an array on the stack (on the heap for a long list)
    char *local [16];
    char **frames = wanted <= 16? local: (char **) malloc (wanted * sizeof (char *));
    int rc = -1;
    if (frames)
        rc = zgossip_recv_into (node, zgossip_rcvtimeo (node), frames, wanted);
    else
        wanted = 0;             //  Out of memory: nothing is taken off the pipe

    //  Hand frame i to the i-th pointer; the rest are NULL (as on failure)
    size_t index = 0;
    va_start (args, first);
    for (char **string_p = first; string_p; string_p = va_arg (args, char **)) {
        *string_p = index < wanted? frames [index]: NULL;
        index++;
    }
    va_end (args);
    if (frames && frames != local)
        free (frames);
    return rc < 0? -1: rc;
}
