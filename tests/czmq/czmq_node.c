/*  czmq_node: runs one CZMQ zgossip actor and drives it over stdin/stdout,
    so Rust tests can put a real CZMQ 4.2.1 node next to ours.

    Usage: czmq_node [name]

    stdin   one command per line, frames separated by TAB, e.g.
                BIND<TAB>tcp://127.0.0.1:*
                PUBLISH<TAB>key<TAB>value
            Each line is sent to the actor as one multipart string message.
            The line "$TERM", or end of input, destroys the actor and exits 0.
    stdout  every message the actor sends back, one line each, frames
            separated by TAB (DELIVER<TAB>k<TAB>v, STATUS<TAB>2, PORT<TAB>5670),
            flushed at once.

    In both directions a backslash escapes the characters a line cannot
    hold: \t TAB, \n newline, \r carriage return, \\ backslash.

    CZMQ's zgossip sends its log to the C stdout, so this program keeps
    the original stdout for its replies and points fd 1 at stderr.

    Build: cc -O1 -o czmq_node czmq_node.c $(pkg-config --cflags --libs libczmq)
*/
#include <czmq.h>
#include <unistd.h>

static FILE *replies;           //  The original stdout

//  Sends one line (without its newline) to the actor
static void
s_send_line (zactor_t *actor, char *line)
{
    zmsg_t *msg = zmsg_new ();
    char *frame = line;
    char *write = line;
    for (char *read = line; ; read++) {
        if (*read == '\\' && read [1]) {
            read++;
            *write++ = *read == 't'? '\t': *read == 'n'? '\n': *read == 'r'? '\r': *read;
        }
        else
        if (*read == '\t' || *read == 0) {
            char end = *read;
            *write = 0;
            zmsg_addstr (msg, frame);
            if (end == 0)
                break;
            frame = write = read + 1;
        }
        else
            *write++ = *read;
    }
    zmsg_send (&msg, actor);
}

//  Prints one message from the actor as a line
static void
s_print_msg (zmsg_t *msg)
{
    zframe_t *frame = zmsg_first (msg);
    bool first = true;
    while (frame) {
        if (!first)
            fputc ('\t', replies);
        first = false;
        const byte *data = zframe_data (frame);
        size_t size = zframe_size (frame);
        for (size_t i = 0; i < size; i++) {
            switch (data [i]) {
                case '\t': fputs ("\\t", replies); break;
                case '\n': fputs ("\\n", replies); break;
                case '\r': fputs ("\\r", replies); break;
                case '\\': fputs ("\\\\", replies); break;
                default:   fputc (data [i], replies);
            }
        }
        frame = zmsg_next (msg);
    }
    fputc ('\n', replies);
    fflush (replies);
}

typedef struct {
    zactor_t *actor;
    char *buffer;               //  Unfinished input line(s)
    size_t size, cap;
} driver_t;

//  Prints every reply the actor has ready
static int
s_actor_ready (zloop_t *loop, zsock_t *reader, void *arg)
{
    driver_t *self = (driver_t *) arg;
    while (zsock_events (self->actor) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (self->actor);
        if (!msg)
            return -1;
        s_print_msg (msg);
        zmsg_destroy (&msg);
    }
    return 0;
}

//  Reads stdin and sends every complete line; -1 ends the loop
static int
s_stdin_ready (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    driver_t *self = (driver_t *) arg;
    if (self->size == self->cap) {
        char *bigger = (char *) realloc (self->buffer, self->cap * 2);
        if (!bigger)
            return -1;
        self->buffer = bigger;
        self->cap *= 2;
    }
    ssize_t got = read (STDIN_FILENO, self->buffer + self->size, self->cap - self->size);
    if (got == -1 && errno == EINTR)
        return 0;
    if (got <= 0)
        return -1;              //  End of input (or error): stop
    self->size += (size_t) got;
    char *start = self->buffer;
    char *eoln;
    while ((eoln = (char *) memchr (start, '\n', self->size - (start - self->buffer)))) {
        *eoln = 0;
        if (eoln > start && eoln [-1] == '\r')
            eoln [-1] = 0;
        if (streq (start, "$TERM"))
            return -1;
        if (*start)
            s_send_line (self->actor, start);
        start = eoln + 1;
    }
    self->size -= start - self->buffer;
    memmove (self->buffer, start, self->size);
    return 0;
}

int
main (int argc, char *argv [])
{
    //  Keep the real stdout for replies; CZMQ's log goes to stderr
    int out_fd = dup (STDOUT_FILENO);
    if (out_fd == -1 || dup2 (STDERR_FILENO, STDOUT_FILENO) == -1)
        return 1;
    replies = fdopen (out_fd, "w");
    if (!replies)
        return 1;

    zsys_init ();
    zsys_set_logstream (stderr);
    driver_t self = { NULL, NULL, 0, 4096 };
    self.buffer = (char *) malloc (self.cap);
    self.actor = zactor_new (zgossip, argc > 1? argv [1]: "czmq");
    zloop_t *loop = zloop_new ();
    if (!self.buffer || !self.actor || !loop)
        return 1;
    zmq_pollitem_t input = { NULL, STDIN_FILENO, ZMQ_POLLIN, 0 };
    if (zloop_reader (loop, (zsock_t *) self.actor, s_actor_ready, &self)
    ||  zloop_poller (loop, &input, s_stdin_ready, &self))
        return 1;
    //  Runs until a handler returns -1 (end of input, $TERM) or a signal
    zloop_start (loop);
    zloop_destroy (&loop);
    //  Sends $TERM to the actor and waits for it to end
    zactor_destroy (&self.actor);
    free (self.buffer);
    fclose (replies);
    return 0;
}
