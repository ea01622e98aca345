/* pdftest.h: reading PDFs in the notifier's tests with Debian's
 * poppler-utils (pdftotext, pdfinfo) as separate processes: what a client's
 * PDF reader would show. */
#ifndef LEDGERLINE_TESTS_PDFTEST_H
#define LEDGERLINE_TESTS_PDFTEST_H

#include <stddef.h>

/* Writes the bytes to a fresh temporary file; returns its malloc'd path. */
char *pdftest_write(const unsigned char *pdf, size_t len);

/* pdftotext of pages first..last (0, 0: all) of the PDF at path, layout
 * kept; malloc'd text, NULL when pdftotext failed. */
char *pdftest_text(const char *path, int first, int last);

/* Pages of the PDF at path by pdfinfo; -1 when it failed. */
int pdftest_pages(const char *path);

/* Removes the file and frees the path. */
void pdftest_remove(char *path);

#endif
