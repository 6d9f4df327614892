/*  =========================================================================
    zgossip_x.c - the variadic CZMQ-style calls of the C API, which stable
    Rust cannot define: zgossip_sendx and zgossip_recvx. build.rs compiles
    this file into libzgossip; they are declared in include/zgossip.h.

    Both are thin: they gather or scatter the frames and call the Rust
    functions zgossip_send, zgossip_recv and zgossip_frames_free.

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
    const char **frames = (const char **) malloc ((count ? count : 1) * sizeof (char *));
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
    free (frames);
    return rc == 0? 0: -1;
}

int
zgossip_recvx (zgossip_t *node, char **first, ...)
{
    char **frames = NULL;
    size_t count = 0;
    int rc = zgossip_recv (node, zgossip_rcvtimeo (node), &frames, &count);

    //  Hand frame i to the i-th pointer; set the pointers left over to NULL
    size_t index = 0;
    char **string_p = first;
    va_list args;
    va_start (args, first);
    while (string_p) {
        if (rc >= 0 && index < count) {
            *string_p = frames [index];
            frames [index] = NULL;
        }
        else
            *string_p = NULL;
        index++;
        string_p = va_arg (args, char **);
    }
    va_end (args);

    //  Frames nobody asked for are dropped with the array
    if (rc < 0)
        return -1;
    zgossip_frames_free (&frames, count);
    return (int) count;
}
