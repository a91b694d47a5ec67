/* Compiled once per public header and language standard: the header must
 * compile on its own (no other include before it) with -Wpedantic. */
#include GDN_TEST_HEADER

int main(void)
{
    return 0;
}
