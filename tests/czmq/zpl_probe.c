/*  zpl_probe: feeds text to CZMQ's zconfig and prints what it makes of it,
    so tests can compare our ZPL reader and writer with CZMQ's.

    zpl_probe load       stdin is ZPL text; prints zconfig_str_save of the
                         parsed tree, or the single line "ERROR" when
                         zconfig rejects the text.
    zpl_probe put        stdin holds lines "path<TAB>value"; each is given
                         to zconfig_put on an empty root; prints the result
                         of zconfig_str_save.

    Build: cc -O1 -o zpl_probe zpl_probe.c $(pkg-config --cflags --libs libczmq)
*/
#include <czmq.h>
#include <unistd.h>

static char *
s_read_all (size_t *size_p)
{
    size_t size = 0, cap = 4096;
    char *data = (char *) malloc (cap + 1);
    if (!data)
        return NULL;
    size_t got;
    while ((got = fread (data + size, 1, cap - size, stdin)) > 0) {
        size += got;
        if (size == cap) {
            cap *= 2;
            char *bigger = (char *) realloc (data, cap + 1);
            if (!bigger) {
                free (data);
                return NULL;
            }
            data = bigger;
        }
    }
    data [size] = 0;
    *size_p = size;
    return data;
}

int
main (int argc, char *argv [])
{
    if (argc != 2)
        return 2;
    //  zconfig prints syntax errors on stdout; keep it for our output and
    //  point fd 1 at stderr
    int out_fd = dup (STDOUT_FILENO);
    if (out_fd == -1 || dup2 (STDERR_FILENO, STDOUT_FILENO) == -1)
        return 3;
    FILE *out = fdopen (out_fd, "w");
    if (!out)
        return 3;
    size_t size = 0;
    char *text = s_read_all (&size);
    if (!text)
        return 3;
    zconfig_t *root = NULL;
    if (streq (argv [1], "load")) {
        zchunk_t *chunk = zchunk_new (text, size);
        root = zconfig_chunk_load (chunk);
        zchunk_destroy (&chunk);
        if (!root) {
            fputs ("ERROR\n", out);
            fclose (out);
            free (text);
            return 0;
        }
    }
    else
    if (streq (argv [1], "put")) {
        root = zconfig_new ("root", NULL);
        char *line = text;
        while (line && *line) {
            char *eoln = strchr (line, '\n');
            if (eoln)
                *eoln = 0;
            char *tab = strchr (line, '\t');
            if (tab) {
                *tab = 0;
                zconfig_put (root, line, tab + 1);
            }
            line = eoln? eoln + 1: NULL;
        }
    }
    else {
        free (text);
        return 2;
    }
    char *saved = zconfig_str_save (root);
    fputs (saved, out);
    fclose (out);
    free (saved);
    zconfig_destroy (&root);
    free (text);
    return 0;
}
