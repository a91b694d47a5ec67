/*
 * gdn_cmds.h - subcommands of the gdn program that live in their own files.
 */
#ifndef GDN_CMDS_H
#define GDN_CMDS_H

int gdn_cmd_train(int argc, char **argv);    /* gdn_train.c: gdn train [options]    */
int gdn_cmd_generate(int argc, char **argv); /* gdn_train.c: gdn generate [options] */

#endif
