/*  version.c - the version macros' arithmetic, and the library agrees. */

#undef NDEBUG                   //  the checks are asserts: keep them
#include <assert.h>
#include <stdio.h>

#include <zgossip.h>

//  The macros are usable in the preprocessor, as a CZMQ user would
#if ZGOSSIP_VERSION < ZGOSSIP_MAKE_VERSION (0, 1, 0)
#   error "ZGOSSIP_VERSION is below 0.1.0"
#endif

int
main (void)
{
    assert (ZGOSSIP_MAKE_VERSION (1, 2, 3) == 10203);
    assert (ZGOSSIP_MAKE_VERSION (0, 0, 0) == 0);
    assert (ZGOSSIP_MAKE_VERSION (0, 2, 0) > ZGOSSIP_MAKE_VERSION (0, 1, 99));
    assert (ZGOSSIP_MAKE_VERSION (1, 0, 0) > ZGOSSIP_MAKE_VERSION (0, 99, 99));
    assert (ZGOSSIP_VERSION == ZGOSSIP_VERSION_MAJOR * 10000
                             + ZGOSSIP_VERSION_MINOR * 100 + ZGOSSIP_VERSION_PATCH);

    int major = -1, minor = -1, patch = -1;
    zgossip_version (&major, &minor, &patch);
    assert (major == ZGOSSIP_VERSION_MAJOR);
    assert (minor == ZGOSSIP_VERSION_MINOR);
    assert (patch == ZGOSSIP_VERSION_PATCH);
    assert (ZGOSSIP_MAKE_VERSION (major, minor, patch) == ZGOSSIP_VERSION);
    zgossip_version (NULL, NULL, NULL);

    printf ("zgossip %d.%d.%d (%d): OK\n", major, minor, patch, ZGOSSIP_VERSION);
    return 0;
}
