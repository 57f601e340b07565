#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <time.h>
#include "ffdp/ffdp.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int64_t d[3]={182,218,182}; if(argc>4){d[0]=atoll(argv[2]);d[1]=atoll(argv[3]);d[2]=atoll(argv[4]);} ffdp_error err; ffdp_volume*v; ffdp_mat4 w=ffdp_mat4_identity();
  for(int i=0;i<3;i++) w.m[i][3]=-90;
  if(ffdp_volume_create(d,3,w,&v,&err)) return 1;
  float*p=ffdp_volume_data(v); long long n=d[0]*d[1]*d[2];
  for(long long i=0;i<n;i++){ for(int c=0;c<3;c++) p[3*i+c]=2.f*sinf(0.001f*(float)i*(c+1))+1e-3f*(float)(rand()%1000); }
  ffdp_mat4 A=ffdp_mat4_identity();
  for(int r=0;r<(getenv("NREP")?atoi(getenv("NREP")):3);r++){double t=now(); if(ffdp_warp_save_ants(v,A,argc>1?argv[1]:"/tmp/wb/w.nii.gz",&err)){puts(err.msg);return 1;} printf("warp save %.1f ms\n",1e3*(now()-t));}
  return 0;}
