/* httptest.h: HTTP from tests with libcurl: a response-body sink and a
 * one-call JSON request. */
#ifndef LEDGERLINE_TESTS_HTTPTEST_H
#define LEDGERLINE_TESTS_HTTPTEST_H

#include <stddef.h>

/* A growing, NUL-terminated response body; start it as {NULL, 0}. */
typedef struct {
    char *data;
    size_t len;
} httptest_body;

/* CURLOPT_WRITEFUNCTION appending to the httptest_body in CURLOPT_WRITEDATA. */
size_t httptest_sink(char *ptr, size_t size, size_t nmemb, void *userdata);

/* One request (Content-Type: application/json; body sent when not NULL;
 * 60 s timeout). Returns the response body (caller frees; "" when empty) and
 * *code the status, or NULL when no answer came (*code 0). */
char *httptest_request(const char *method, const char *url, const char *body, long *code);

#endif
