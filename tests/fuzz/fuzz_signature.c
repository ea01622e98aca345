/* fuzz_signature.c: libFuzzer target for the Stripe-Signature parser and
 * verifier. Input: header bytes, then a NUL byte, then the body. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t hlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *body = nul ? nul + 1 : data + size;
    size_t blen = (size_t)(data + size - body);

    signature_header h;
    signature_result r = signature_parse((const char *)data, hlen, &h);
    if (r == SIGNATURE_OK && (h.nv1 == 0 || h.nv1 > SIGNATURE_MAX_V1))
        __builtin_trap();

    /* The verifier wants a C string: copy the header part. */
    char hdr[SIGNATURE_HEADER_MAX + 2];
    if (hlen <= SIGNATURE_HEADER_MAX + 1) {
        memcpy(hdr, data, hlen);
        hdr[hlen] = '\0';
        static char s1[] = "whsec_fuzz_one", s2[] = "whsec_fuzz_two";
        signature_secrets secrets = {.count = 2, .secret = {s1, s2}, .len = {14, 14}};
        int64_t now = r == SIGNATURE_OK ? h.t : 1700000000;
        signature_result v = signature_verify(hdr, body, blen, &secrets, now, 300);
        if (r != SIGNATURE_OK && v == SIGNATURE_OK)
            __builtin_trap(); /* a header the parser refuses never verifies */
    }
    return 0;
}
