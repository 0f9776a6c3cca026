# Project code builds with -Wall -Wextra -Werror. Third-party and generated code (protobuf) is not held to it:
# call mephisto_strict(target) on targets whose sources we write.
function(mephisto_strict target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
endfunction()
