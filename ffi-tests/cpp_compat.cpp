// The header compiles as C++ and its calls link with C linkage.
#undef NDEBUG
#include <cassert>
#include <cstring>

#include <zgossip.h>

int main ()
{
    zgossip_t *node = zgossip_new ("cpp");
    assert (node);
    assert (zgossip_sendx (node, "STATUS", static_cast<const char *> (nullptr)) == 0);
    zgossip_set_rcvtimeo (node, 5000);
    char *command = nullptr, *count = nullptr;
    assert (zgossip_recvx (node, &command, &count, static_cast<char **> (nullptr)) == 2);
    assert (std::strcmp (command, "STATUS") == 0);
    zgossip_str_free (&command);
    zgossip_str_free (&count);
    zgossip_destroy (&node);
    assert (zgossip_result_name (-ZGOSSIP_ERR_NULL_ARG) != nullptr);
    return 0;
}
