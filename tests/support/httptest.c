/* httptest.c: see httptest.h. */
#include "httptest.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

size_t httptest_sink(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    httptest_body *b = userdata;
    size_t n = size * nmemb;
    char *d = realloc(b->data, b->len + n + 1);
    if (d == NULL)
        return 0;
    memcpy(d + b->len, ptr, n);
    b->data = d;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

char *httptest_request(const char *method, const char *url, const char *body, long *code)
{
    *code = 0;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    httptest_body b = {NULL, 0};
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httptest_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        free(b.data);
        *code = 0;
        return NULL;
    }
    if (b.data == NULL)
        b.data = calloc(1, 1);
    return b.data;
}
