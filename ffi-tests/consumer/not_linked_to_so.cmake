# Fails when PROGRAM lists libzgossip.so among its needed libraries.
find_program(READELF readelf REQUIRED)
execute_process(COMMAND ${READELF} -d ${PROGRAM} OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf failed on ${PROGRAM}")
endif()
if(dynamic MATCHES "libzgossip\\.so")
    message(FATAL_ERROR "${PROGRAM} needs libzgossip.so: it is not static")
endif()
